"""Integrity of ratings: flags on stored responses, their detection, and their review by officers.

Nothing here deletes a response. Suspicious ones are stored with a flag (``flags.Flag``); headline
indices leave flagged responses out, the sensitivity view shows what that changes, and an officer
above the response's unit confirms or clears each flag with a reason (``review``, audited). The scan
(``services.scan_wave``) also watches receipt-code issuing (``issuance``) and alerts the level above.
"""
