"""An aiosmtpd handler that refuses every recipient, for the tests of
delivery failures: `python3 -m aiosmtpd -n -c smtp_refuse.Refuse`."""


class Refuse:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.7.1 Recipient refused by test policy"
