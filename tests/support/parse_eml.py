"""Parses every message in a Maildir written by aiosmtpd's Mailbox handler
with Python's own `email` package (an independent parser), and prints them
as JSON: decoded headers, envelope, and both bodies."""

import email
import json
import os
import sys
from email import policy

maildir = sys.argv[1]
out = []
for sub in ("new", "cur"):
    folder = os.path.join(maildir, sub)
    if not os.path.isdir(folder):
        continue
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        out.append({
            "file": name,
            "size": os.path.getsize(path),
            "subject": str(msg["Subject"]),
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "date": str(msg["Date"]),
            "message_id": str(msg["Message-ID"]),
            "window": str(msg["X-Kehoach-Window"]),
            "mail_from": str(msg["X-MailFrom"]),
            "rcpt_to": [a.strip() for a in str(msg["X-RcptTo"]).split(",")],
            "header_names": list(msg.keys()),
            "text": text.get_content() if text else "",
            "html": html.get_content() if html else "",
        })
json.dump(out, sys.stdout, ensure_ascii=False)
