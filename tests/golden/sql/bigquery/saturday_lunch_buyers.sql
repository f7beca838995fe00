SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
  )
  AND u.user_id IN (
    SELECT
      x.user_id
    FROM (
      SELECT
        p.user_id,
        p.ts
      FROM purchases AS p
      WHERE
        p.status = 'paid'
        AND NOT p.user_id IS NULL
        AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
    ) AS x
    JOIN users AS uu
      ON uu.user_id = x.user_id
    GROUP BY
      x.user_id
    HAVING
      COUNT(*) >= 2
      AND CAST(COUNTIF(
        (
          MOD(
            MOD(
              DATE_DIFF(
                CAST(DATETIME(TIMESTAMP((
                  x.ts
                ), 'UTC'), COALESCE(uu.timezone, 'Europe/Prague')) AS DATE),
                CAST('2000-01-03' AS DATE),
                DAY
              ),
              7
            ) + 7,
            7
          ) + 1
        ) IN (6)
        AND EXTRACT(HOUR FROM DATETIME(TIMESTAMP((
          x.ts
        ), 'UTC'), COALESCE(uu.timezone, 'Europe/Prague'))) >= 11
        AND EXTRACT(HOUR FROM DATETIME(TIMESTAMP((
          x.ts
        ), 'UTC'), COALESCE(uu.timezone, 'Europe/Prague'))) < 15
      ) AS FLOAT64) / COUNT(*) >= 0.5
  );
