-- Print-file checks (issue 14): does a photo of width x height pixels make
-- a product's print size at the minimum resolution, and how is it fitted.
-- FOUNDATION STUBS: the print-checks helper writes the bodies.

-- The sizing recorded on a line of product p_product for a photo of
-- p_width x p_height pixels: 'crop' or 'fit' where the ratios differ (the
-- client's p_sizing, 'crop' by default), NULL where they do not or the
-- product has no print size.  Refuses 409 photo_too_small (naming the
-- largest size the photo can be printed at) below the minimum resolution.
CREATE OR REPLACE FUNCTION print_check(p_width integer, p_height integer,
                                       p_product text, p_sizing text,
                                       p_line integer)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN p_sizing;
END $$;


-- The products of price sheet p_sheet a photo of p_width x p_height
-- pixels can make: a JSON array of product ids.
CREATE OR REPLACE FUNCTION print_offers(p_width integer, p_height integer,
                                        p_sheet text)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(product_id ORDER BY position, product_id),
                    '[]')
      FROM price_sheet_items WHERE sheet_id = p_sheet;
$$;
