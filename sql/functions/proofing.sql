-- Proofing (issue 14): visitors, their lists, selections.
-- FOUNDATION STUBS: the proofing helper writes the bodies.

-- The cart line for the extra photos of a selection, item
-- {"selection": <list id>} of a gallery checkout: a line of kind
-- 'selection' priced galleries.extra_photo_amount per photo beyond
-- selection_limit, in the gallery's currency.
CREATE OR REPLACE FUNCTION gallery_selection_line(p_gallery bigint,
                                                  p_item jsonb,
                                                  p_currency text,
                                                  p_line integer)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM darkroom_refuse(400, 'not_offered',
        format('Item %s: extra photos of a selection are not sold yet.',
               p_line));
    RETURN NULL;
END $$;
