"""Parses an iCalendar file with the `icalendar` package (Debian's
python3-icalendar, an independent parser) and prints it as one JSON object:

    {"calname": ..., "prodid": ..., "method": ..., "timezone": ...,
     "events": [{"uid", "summary", "description", "start", "end", "url",
                 "status", "sequence", "alarms": ["-P7D", "-P1D"]}]}

`start` and `end` are ISO dates (or date-times); each alarm is its TRIGGER
as an ISO-8601 duration (or an ISO date-time for an absolute trigger).

Usage: /usr/bin/python3 tests/support/parse_ics.py FILE.ics

Exits non-zero with a message on stderr when the file does not parse, when
the parser reports errors in a component, or when the file breaks the
RFC 5545 line rules the parser tolerates: a line not ending in CRLF, or a
line longer than 75 octets."""

import datetime
import json
import sys

import icalendar


def fail(message):
    print(f"parse_ics.py: {message}", file=sys.stderr)
    sys.exit(1)


def check_lines(data):
    if not data.endswith(b"\r\n"):
        fail("the last line does not end with CRLF")
    for number, line in enumerate(data[:-2].split(b"\r\n"), start=1):
        if b"\n" in line or b"\r" in line:
            fail(f"line {number}: a line break other than CRLF")
        if len(line) > 75:
            fail(f"line {number}: {len(line)} octets, more than 75")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            fail(f"line {number}: not UTF-8 on its own (a character split by folding?): {e}")


def text(component, name):
    value = component.get(name)
    return None if value is None else str(value)


def when(component, name):
    value = component.get(name)
    if value is None:
        return None
    # The parser reads a malformed date such as 2024133 as a time of day:
    # refuse anything but a date or date-time, and a date-time where
    # VALUE=DATE says date.
    dt = value.dt
    if not isinstance(dt, datetime.date):
        fail(f"{component.get('UID')}: {name} is not a date or date-time: {dt!r}")
    if value.params.get("VALUE") == "DATE" and isinstance(dt, datetime.datetime):
        fail(f"{component.get('UID')}: {name} has VALUE=DATE but holds a date-time: {dt!r}")
    return dt.isoformat()


def trigger(alarm):
    value = alarm.get("TRIGGER")
    if value is None:
        return None
    if hasattr(value.dt, "total_seconds"):
        return icalendar.vDuration(value.dt).to_ical().decode()
    return value.dt.isoformat()


def main():
    if len(sys.argv) != 2:
        fail("usage: parse_ics.py FILE.ics")
    try:
        with open(sys.argv[1], "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"cannot read {sys.argv[1]}: {e}")
    check_lines(data)
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as e:  # the parser raises ValueError, KeyError, ...
        fail(f"icalendar could not parse {sys.argv[1]}: {e!r}")
    if calendar.name != "VCALENDAR":
        fail(f"the top component is {calendar.name}, not VCALENDAR")
    for component in calendar.walk():
        errors = getattr(component, "errors", None)
        if errors:
            fail(f"{component.name}: {errors}")
    events = []
    for event in calendar.walk("VEVENT"):
        sequence = event.get("SEQUENCE")
        events.append({
            "uid": text(event, "UID"),
            "summary": text(event, "SUMMARY"),
            "description": text(event, "DESCRIPTION"),
            "start": when(event, "DTSTART"),
            "end": when(event, "DTEND"),
            "url": text(event, "URL"),
            "status": text(event, "STATUS"),
            "sequence": None if sequence is None else int(sequence),
            "alarms": [trigger(a) for a in event.walk("VALARM")],
        })
    json.dump({
        "calname": text(calendar, "X-WR-CALNAME"),
        "prodid": text(calendar, "PRODID"),
        "method": text(calendar, "METHOD"),
        "timezone": text(calendar, "X-WR-TIMEZONE"),
        "events": events,
    }, sys.stdout, ensure_ascii=False)
    print()


main()
