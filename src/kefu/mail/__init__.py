"""Email in and out: mailboxes fetched over IMAP into tickets, replies sent over SMTP."""
