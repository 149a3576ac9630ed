"""An aiosmtpd handler for the fault-injection tests: it records every
message it accepts as one JSON line (Message-ID, envelope recipients,
Subject, Date header, time of receipt)
and can misbehave, as set by environment variables:

- SMTP_LOG: the file the JSON lines are appended to (required);
- SMTP_REJECT: comma-separated addresses refused with a 550 at RCPT;
- SMTP_REJECT_ALL=1: every recipient refused with a 550;
- SMTP_DELAY: seconds to wait before answering DATA (a slow server).

Run as `python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_faults.Faults`
with this directory on PYTHONPATH.
"""

import asyncio
import email
import json
import os
import time


class Faults:
    def __init__(self):
        self.log = os.environ["SMTP_LOG"]
        self.reject = {a.strip().lower() for a in os.environ.get("SMTP_REJECT", "").split(",") if a.strip()}
        self.reject_all = os.environ.get("SMTP_REJECT_ALL") == "1"
        self.delay = float(os.environ.get("SMTP_DELAY", "0") or 0)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_all or address.lower() in self.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: test policy" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        line = json.dumps(
            {
                "message_id": (message.get("Message-ID") or "").strip().strip("<>"),
                "rcpt_tos": envelope.rcpt_tos,
                "subject": str(message.get("Subject") or ""),
                "date": str(message.get("Date") or ""),
                "at": time.time(),
            }
        )
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        return "250 2.0.0 Ok: queued"
