-- Print-file checks (issue 14): print_check() gains the photo's name for
-- its refusal (an argument with a default: the five-argument form goes).

DROP FUNCTION IF EXISTS print_check(integer, integer, text, text, integer);
