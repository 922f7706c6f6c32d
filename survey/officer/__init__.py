"""The staff side (reform officers, leaders, administrators): sign-in, accounts, the audit log."""
