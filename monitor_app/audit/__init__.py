"""The audit trail: recording each request's event, and the admins' view and export of it."""
