"""Reminders and notifications: an outbox in the dues ledger's database, a
relay that sends its rows through channels (SMTP email, HTTP webhooks), the
rules of a site's reminders, consent and contacts. See docs/reminders.md."""
