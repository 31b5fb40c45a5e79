-- The demo bookings (issue 16), for `make run`: a photographer in
-- Europe/London, two session types with their questions (each with a
-- deposit below its price, so a booking has a balance to pay: its link
-- emailed balance_due_hours before, or from the booking's page) and the weekly
-- hours (Monday to Friday 09:00-17:30, Saturday 10:00-14:00, London's
-- wall clock, so every coming week).  Through the admin API's functions
-- (sql/functions/bookings_admin.sql), which check everything; running it
-- again changes nothing but updated_at.

SELECT bookings_admin_photographer_upsert('studio', '{
    "name": "Harbour Light Studio",
    "email": "studio@example.com",
    "time_zone": "Europe/London",
    "min_notice_hours": 24,
    "horizon_days": 90,
    "max_per_day": 4
}');

SELECT bookings_admin_type_upsert('portrait', '{
    "photographer": "studio",
    "name": "Portrait session",
    "description": "An hour in the studio or outdoors nearby; ten edited photos.",
    "duration_minutes": 60,
    "buffer_after_minutes": 15,
    "slot_step_minutes": 30,
    "currency": "GBP",
    "price": 15000,
    "deposit_kind": "percent",
    "deposit_percent": 30,
    "location": "Harbour Light Studio, 1 Quay Street",
    "online": false,
    "refund_hours": 48,
    "reschedule_hours": 24,
    "balance_due_hours": 72,
    "active": true,
    "position": 1,
    "questions": [
        {"id": "people", "label": "How many people?", "kind": "choice",
         "choices": ["1", "2", "3 or more"], "required": true},
        {"id": "notes", "label": "Anything we should know?", "kind": "long",
         "required": false}
    ]
}');

SELECT bookings_admin_type_upsert('family', '{
    "photographer": "studio",
    "name": "Family session",
    "description": "Ninety minutes for the whole family, pets welcome.",
    "duration_minutes": 90,
    "buffer_before_minutes": 15,
    "buffer_after_minutes": 15,
    "slot_step_minutes": 30,
    "currency": "GBP",
    "price": 25000,
    "deposit_kind": "fixed",
    "deposit_amount": 7500,
    "location": "Harbour Light Studio, 1 Quay Street",
    "online": false,
    "refund_hours": 72,
    "reschedule_hours": 48,
    "balance_due_hours": 96,
    "active": true,
    "position": 2,
    "questions": [
        {"id": "children", "label": "Children and their ages", "kind": "text",
         "required": true},
        {"id": "place", "label": "Where would you like it?", "kind": "choice",
         "choices": ["Studio", "Beach", "Our home"], "required": true}
    ]
}');

SELECT bookings_admin_hours_set('studio', '[
    {"weekday": 1, "starts": "09:00", "ends": "17:30"},
    {"weekday": 2, "starts": "09:00", "ends": "17:30"},
    {"weekday": 3, "starts": "09:00", "ends": "17:30"},
    {"weekday": 4, "starts": "09:00", "ends": "17:30"},
    {"weekday": 5, "starts": "09:00", "ends": "17:30"},
    {"weekday": 6, "starts": "10:00", "ends": "14:00"}
]');
