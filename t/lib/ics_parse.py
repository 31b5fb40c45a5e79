"""Parses iCalendar text (a file named on the command line) with Debian's
python3-icalendar and prints what the tests check as JSON: the calendar's
properties and each VEVENT's, times as UTC ISO strings, text unescaped,
parameters of ORGANIZER and ATTENDEE.  A time with a TZID is also given
as <NAME>_TZID and as <NAME>_VTZ: its wall clock turned into UTC by the
calendar's own VTIMEZONE of that TZID (its observances' offsets, not the
name's rules); each VTIMEZONE's observances are listed."""

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


def text(v):
    v = v.to_ical()
    return v.decode() if isinstance(v, bytes) else str(v)


def observances(vtz):
    return [{'kind': o.name, 'DTSTART': text(o['DTSTART']),
             'TZOFFSETFROM': text(o['TZOFFSETFROM']),
             'TZOFFSETTO': text(o['TZOFFSETTO']),
             'TZNAME': str(o.get('TZNAME', ''))}
            for o in vtz.subcomponents]


def by_vtimezone(v, zones):
    # the wall clock as written, localized with the VTIMEZONE's own
    # transitions (Timezone.to_tz), then UTC
    tzid = str(v.params['TZID'])
    if tzid not in zones:
        return None
    wall = v.dt.replace(tzinfo=None)
    return zones[tzid].to_tz().localize(wall).astimezone(
        timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def main():
    with open(sys.argv[1], 'rb') as f:
        cal = Calendar.from_ical(f.read())
    out = {'calendar': {}, 'events': [], 'timezones': [],
           'observances': {}}
    for k in ('PRODID', 'VERSION', 'METHOD'):
        if k in cal:
            out['calendar'][k] = str(cal[k])
    zones = {}
    for comp in cal.walk():
        if comp.name == 'VTIMEZONE':
            out['timezones'].append(str(comp['TZID']))
            zones[str(comp['TZID'])] = comp
            out['observances'][str(comp['TZID'])] = observances(comp)
    for comp in cal.walk():
        if comp.name != 'VEVENT':
            continue
        ev = {}
        for k, v in comp.items():
            ev[k] = value(v)
            if k in ('ORGANIZER', 'ATTENDEE'):
                ev[k + '_CN'] = str(v.params.get('CN', ''))
            if k in ('DTSTART', 'DTEND') and 'TZID' in v.params:
                ev[k + '_TZID'] = str(v.params['TZID'])
                ev[k + '_VTZ'] = by_vtimezone(v, zones)
        out['events'].append(ev)
    print(json.dumps(out, sort_keys=True))


main()
