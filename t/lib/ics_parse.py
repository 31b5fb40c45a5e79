"""Parses iCalendar text (a file named on the command line) with Debian's
python3-icalendar and prints what the tests check as JSON: the calendar's
properties and each VEVENT's, times as UTC ISO strings, text unescaped,
parameters of ORGANIZER and ATTENDEE."""

import json
import sys
from datetime import timezone

from icalendar import Calendar


def value(v):
    dt = getattr(v, 'dt', None)
    if dt is not None:
        if getattr(dt, 'tzinfo', None) is None:
            return {'naive': dt.isoformat()}
        return dt.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    return str(v)


def main():
    with open(sys.argv[1], 'rb') as f:
        cal = Calendar.from_ical(f.read())
    out = {'calendar': {}, 'events': [], 'timezones': []}
    for k in ('PRODID', 'VERSION', 'METHOD'):
        if k in cal:
            out['calendar'][k] = str(cal[k])
    for comp in cal.walk():
        if comp.name == 'VTIMEZONE':
            out['timezones'].append(str(comp['TZID']))
        if comp.name != 'VEVENT':
            continue
        ev = {}
        for k, v in comp.items():
            ev[k] = value(v)
            if k in ('ORGANIZER', 'ATTENDEE'):
                ev[k + '_CN'] = str(v.params.get('CN', ''))
        out['events'].append(ev)
    print(json.dumps(out, sort_keys=True))


main()
