WITH rfm AS (
  SELECT
    s.user_id,
    s.recency_days,
    s.frequency,
    s.monetary,
    s.r,
    s.f,
    s.m,
    CAST(100 * s.r + 10 * s.f + s.m AS VARCHAR) AS cell,
    c.segment
  FROM (
    SELECT
      user_id,
      recency_days,
      frequency,
      monetary,
      NTILE(5) OVER (ORDER BY recency_days DESC NULLS LAST, hr) AS r,
      NTILE(5) OVER (ORDER BY frequency ASC, hr) AS f,
      NTILE(5) OVER (ORDER BY monetary ASC, hr) AS m
    FROM (
      SELECT
        b0.*,
        ROW_NUMBER() OVER (ORDER BY h, user_id) AS hr
      FROM (
        SELECT
          d.user_id,
          MD5(d.user_id) AS h,
          DATEDIFF(DAY, MAX(d.day), CAST('2026-11-15' AS DATE)) AS recency_days,
          COUNT(*) AS frequency,
          CAST(SUM(d.amount) AS DECIMAL(18, 3)) AS monetary
        FROM (
          SELECT
            o.user_id,
            o.day,
            SUM(o.amount_base) AS amount
          FROM (
            SELECT
              p.user_id,
              CASE
                WHEN p.ts >= CAST('2026-10-25 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2026-03-29 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2025-10-26 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2025-03-30 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2024-10-27 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2024-03-31 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2023-10-29 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2023-03-26 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2022-10-30 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2022-03-27 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2021-10-31 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2021-03-28 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2020-10-25 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2020-03-29 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2019-10-27 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2019-03-31 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2018-10-28 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2018-03-25 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2017-10-29 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2017-03-26 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2016-10-30 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2016-03-27 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2015-10-25 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2015-03-29 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2014-10-26 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2014-03-30 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2013-10-27 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2013-03-31 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2012-10-28 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2012-03-25 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2011-10-30 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2011-03-27 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2010-10-31 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2010-03-28 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2009-10-25 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2009-03-29 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2008-10-26 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2008-03-30 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2007-10-28 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                WHEN p.ts >= CAST('2007-03-25 01:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '7200 SECOND' AS DATE)
                WHEN p.ts >= CAST('2006-10-31 20:00:00.000000' AS TIMESTAMPNTZ)
                THEN CAST(p.ts + INTERVAL '3600 SECOND' AS DATE)
                ELSE CAST(CONVERT_TIMEZONE('UTC', 'Europe/Prague', (
                  p.ts
                )) AS DATE)
              END AS day,
              p.amount_base
            FROM purchases AS p
            WHERE
              p.status = 'paid'
              AND NOT p.user_id IS NULL
              AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
              AND p.ts >= CAST('2025-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
          ) AS o
          GROUP BY
            o.user_id,
            o.day
        ) AS d
        GROUP BY
          d.user_id
      ) AS b0
    ) AS b
  ) AS s
  JOIN (VALUES
    (11, 'hibernating'),
    (12, 'hibernating'),
    (13, 'at_risk'),
    (14, 'at_risk'),
    (15, 'cant_lose_them'),
    (21, 'hibernating'),
    (22, 'hibernating'),
    (23, 'at_risk'),
    (24, 'at_risk'),
    (25, 'cant_lose_them'),
    (31, 'about_to_sleep'),
    (32, 'about_to_sleep'),
    (33, 'need_attention'),
    (34, 'loyal_customers'),
    (35, 'loyal_customers'),
    (41, 'promising'),
    (42, 'potential_loyalists'),
    (43, 'potential_loyalists'),
    (44, 'loyal_customers'),
    (45, 'loyal_customers'),
    (51, 'new_customers'),
    (52, 'potential_loyalists'),
    (53, 'potential_loyalists'),
    (54, 'champions'),
    (55, 'champions')) AS c(rf, segment)
    ON c.rf = 10 * s.r + s.f
)
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
      user_id
    FROM rfm
    WHERE
      segment IN ('at_risk', 'cant_lose_them')
  );
