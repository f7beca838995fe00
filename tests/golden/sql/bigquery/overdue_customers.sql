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
      s.user_id
    FROM (
      SELECT
        user_id,
        COUNT(*) AS days,
        MAX(day) AS last_day
      FROM (
        SELECT DISTINCT
          p.user_id,
          CASE
            WHEN p.ts >= CAST('2026-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2026-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2025-10-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2025-03-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2024-10-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2024-03-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2023-10-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2023-03-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2022-10-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2022-03-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2021-10-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2021-03-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2020-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2020-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2019-10-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2019-03-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2018-10-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2018-03-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2017-10-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2017-03-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2016-10-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2016-03-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2015-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2015-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2014-10-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2014-03-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2013-10-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2013-03-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2012-10-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2012-03-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2011-10-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2011-03-27 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2010-10-31 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2010-03-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2009-10-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2009-03-29 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2008-10-26 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2008-03-30 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2007-10-28 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            WHEN p.ts >= CAST('2007-03-25 01:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
            WHEN p.ts >= CAST('2006-10-31 20:00:00.000000' AS DATETIME)
            THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
            ELSE CAST(DATETIME(TIMESTAMP((
              p.ts
            ), 'UTC'), 'Europe/Prague') AS DATE)
          END AS day
        FROM purchases AS p
        WHERE
          p.status = 'paid'
          AND NOT p.user_id IS NULL
          AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
      ) AS d2
      GROUP BY
        user_id
    ) AS s
    JOIN (
      SELECT
        user_id,
        AVG(gap) AS median_gap
      FROM (
        SELECT
          user_id,
          gap,
          ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY gap NULLS LAST, day NULLS LAST) AS rn,
          COUNT(*) OVER (PARTITION BY user_id) AS n
        FROM (
          SELECT
            user_id,
            day,
            DATE_DIFF(day, LAG(day) OVER (PARTITION BY user_id ORDER BY day NULLS LAST), DAY) AS gap
          FROM (
            SELECT DISTINCT
              p.user_id,
              CASE
                WHEN p.ts >= CAST('2026-10-25 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2026-03-29 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2025-10-26 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2025-03-30 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2024-10-27 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2024-03-31 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2023-10-29 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2023-03-26 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2022-10-30 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2022-03-27 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2021-10-31 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2021-03-28 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2020-10-25 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2020-03-29 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2019-10-27 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2019-03-31 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2018-10-28 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2018-03-25 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2017-10-29 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2017-03-26 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2016-10-30 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2016-03-27 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2015-10-25 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2015-03-29 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2014-10-26 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2014-03-30 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2013-10-27 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2013-03-31 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2012-10-28 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2012-03-25 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2011-10-30 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2011-03-27 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2010-10-31 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2010-03-28 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2009-10-25 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2009-03-29 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2008-10-26 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2008-03-30 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2007-10-28 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                WHEN p.ts >= CAST('2007-03-25 01:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS DATE)
                WHEN p.ts >= CAST('2006-10-31 20:00:00.000000' AS DATETIME)
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS DATE)
                ELSE CAST(DATETIME(TIMESTAMP((
                  p.ts
                ), 'UTC'), 'Europe/Prague') AS DATE)
              END AS day
            FROM purchases AS p
            WHERE
              p.status = 'paid'
              AND NOT p.user_id IS NULL
              AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
          ) AS d
        ) AS g
        WHERE
          NOT gap IS NULL
      ) AS k
      WHERE
        2 * rn >= n AND 2 * rn <= n + 2
      GROUP BY
        user_id
    ) AS m
      ON m.user_id = s.user_id
    WHERE
      s.days >= 3
      AND DATE_DIFF(CAST('2026-11-15' AS DATE), s.last_day, DAY) > 1.5 * m.median_gap
  );
