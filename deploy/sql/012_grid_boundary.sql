-- 012: grid boundaries. Where the boundary of a grid is known, dispatch can place a report
-- whose source knows only the community (a 12345 call: `RX-沁苑`) on the grid whose
-- boundary contains the report's WGS 84 position. It only ever narrows the area the
-- crosswalk gave, never moves a case out of it: the source's grid id stays authoritative
-- (og_registry_locate in daemons/dispatch/registry.c).

SET LOCAL ROLE onegrid_owner;

-- One simple polygon per grid: vertices is a two-dimensional array of [longitude, latitude]
-- pairs in WGS 84 degrees (the order of GeoJSON), e.g. '{{84.8700,45.5950},{84.8760,45.5950},
-- {84.8760,45.5975}}'. The ring closes by itself; repeating the first vertex at the end, as
-- GeoJSON does, is allowed and changes nothing. Every grid has a 15-digit code and only
-- grids have one (001_core.sql ties the code's length to the level), so the format check
-- and the foreign key together admit grids only.
-- dispatch loads every row into memory at start and on SIGHUP (array_to_string(vertices,
-- ' ') gives it the numbers in order), so keep boundaries to what a grid needs: tens or a
-- few hundred vertices, not a surveyed line with thousands.
CREATE TABLE og.grid_boundary (
  area_code text PRIMARY KEY REFERENCES og.area (code) CHECK (area_code ~ '^[0-9]{15}$'),
  vertices  double precision[] NOT NULL CHECK (
    array_ndims(vertices) = 2 AND array_lower(vertices, 1) = 1 AND array_lower(vertices, 2) = 1
    AND array_length(vertices, 2) = 2 AND array_length(vertices, 1) >= 3
    -- IS TRUE: a NULL element makes the comparison NULL, which a CHECK would let pass; NaN
    -- and infinity compare out of range.
    AND (-180 <= ALL (vertices[:][1:1]) AND 180 >= ALL (vertices[:][1:1])
         AND -90 <= ALL (vertices[:][2:2]) AND 90 >= ALL (vertices[:][2:2])) IS TRUE)
);
GRANT SELECT ON og.grid_boundary TO onegrid_reader;
