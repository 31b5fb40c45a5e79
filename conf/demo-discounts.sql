-- Demo discount codes for `make run` (apply after the migrations): DEMO10
-- takes 10% off everything, with no limit.  Written through the admin
-- API's function, so it is checked like any code and running it again
-- changes nothing but updated_at.
SELECT admin_discount('put', 'DEMO10', '{"kind": "percent", "percent_off": 10,
    "amount_off": null, "min_spend": null, "starts_at": null, "ends_at": null,
    "max_redemptions": null, "max_per_email": null, "products": null,
    "kinds": null, "active": true,
    "description": "The demo shop: 10% off everything."}');
