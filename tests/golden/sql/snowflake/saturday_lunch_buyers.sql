SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
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
        AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
    ) AS x
    JOIN users AS uu
      ON uu.user_id = x.user_id
    GROUP BY
      x.user_id
    HAVING
      COUNT(*) >= 2
      AND CAST(COUNT_IF(
        (
          (
            DATEDIFF(
              DAY,
              CAST('2000-01-03' AS DATE),
              CAST(CONVERT_TIMEZONE('UTC', COALESCE(uu.timezone, 'Europe/Prague'), (
                x.ts
              )) AS DATE)
            ) % 7 + 7
          ) % 7 + 1
        ) IN (6)
        AND DATE_PART(HOUR, CONVERT_TIMEZONE('UTC', COALESCE(uu.timezone, 'Europe/Prague'), (
          x.ts
        ))) >= 11
        AND DATE_PART(HOUR, CONVERT_TIMEZONE('UTC', COALESCE(uu.timezone, 'Europe/Prague'), (
          x.ts
        ))) < 15
      ) AS DOUBLE) / COUNT(*) >= 0.5
  );
