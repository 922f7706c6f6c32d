"""Staff accounts and access: passwords, sessions, CSRF, sign-in throttling, guards, unit scopes, staff pages.

``passwords`` hashes with Argon2id; ``services`` creates and changes accounts (every change audited);
``sessions`` keeps server-side sessions in Redis or files; ``throttle`` counts failed sign-ins in the same
store; ``csrf`` protects every staff form; ``guards`` turns a session into a :class:`Principal` and
refuses what its role or unit scope does not allow; ``pages`` renders a staff area's page in the staff
layout, around the signed-in principal.
"""
