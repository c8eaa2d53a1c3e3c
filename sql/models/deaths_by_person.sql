-- deaths_by_person: one row per deceased person. The same death often arrives from
-- two sources days apart: the earliest reported date counts, every report is kept as evidence.
SELECT
    id_number,
    min(died_on) AS died_on,
    list(struct_pack(feed := 'death_records', file := source_file, "row" := source_row,
                     died_on := died_on, source := source)
         ORDER BY died_on, source, source_file, source_row) AS reports
FROM stg_death_records
WHERE id_number IS NOT NULL
GROUP BY id_number
