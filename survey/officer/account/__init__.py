"""The signed-in account's own page: change the password, see and end one's sessions, the second factor."""
