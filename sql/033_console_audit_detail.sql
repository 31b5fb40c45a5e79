-- A short detail on a console audit row (issue 16): what a change was
-- about beyond its method, path and status, e.g. the reason the owner
-- gave for cancelling or moving a booking.  The area's SQL function sets
-- it during the request's work (console_audit_detail(), in
-- sql/functions/console.sql) and console_audit_write() writes it with the
-- request's row; NULL for every other row.

ALTER TABLE console_audit ADD COLUMN detail jsonb;
