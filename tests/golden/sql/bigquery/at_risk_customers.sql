WITH rfm AS (
  SELECT
    s.user_id,
    s.recency_days,
    s.frequency,
    s.monetary,
    s.r,
    s.f,
    s.m,
    CAST(100 * s.r + 10 * s.f + s.m AS STRING) AS cell,
    c.segment
  FROM (
    SELECT
      user_id,
      recency_days,
      frequency,
      monetary,
      NTILE(5) OVER (ORDER BY recency_days DESC, hr NULLS LAST) AS r,
      NTILE(5) OVER (ORDER BY frequency ASC NULLS LAST, hr NULLS LAST) AS f,
      NTILE(5) OVER (ORDER BY monetary ASC NULLS LAST, hr NULLS LAST) AS m
    FROM (
      SELECT
        b0.*,
        ROW_NUMBER() OVER (ORDER BY h NULLS LAST, user_id NULLS LAST) AS hr
      FROM (
        SELECT
          d.user_id,
          TO_HEX(MD5(d.user_id)) AS h,
          DATE_DIFF(CAST('2026-11-15' AS DATE), MAX(d.day), DAY) AS recency_days,
          COUNT(*) AS frequency,
          CAST(SUM(d.amount) AS NUMERIC) AS monetary
        FROM (
          SELECT
            o.user_id,
            o.day,
            SUM(o.amount_base) AS amount
          FROM (
            SELECT
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
              END AS day,
              p.amount_base
            FROM purchases AS p
            WHERE
              p.status = 'paid'
              AND NOT p.user_id IS NULL
              AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
              AND p.ts >= CAST('2025-11-15 20:00:00.000000' AS DATETIME)
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
  JOIN UNNEST([
    STRUCT(11 AS rf, 'hibernating' AS segment),
    STRUCT(12 AS rf, 'hibernating' AS segment),
    STRUCT(13 AS rf, 'at_risk' AS segment),
    STRUCT(14 AS rf, 'at_risk' AS segment),
    STRUCT(15 AS rf, 'cant_lose_them' AS segment),
    STRUCT(21 AS rf, 'hibernating' AS segment),
    STRUCT(22 AS rf, 'hibernating' AS segment),
    STRUCT(23 AS rf, 'at_risk' AS segment),
    STRUCT(24 AS rf, 'at_risk' AS segment),
    STRUCT(25 AS rf, 'cant_lose_them' AS segment),
    STRUCT(31 AS rf, 'about_to_sleep' AS segment),
    STRUCT(32 AS rf, 'about_to_sleep' AS segment),
    STRUCT(33 AS rf, 'need_attention' AS segment),
    STRUCT(34 AS rf, 'loyal_customers' AS segment),
    STRUCT(35 AS rf, 'loyal_customers' AS segment),
    STRUCT(41 AS rf, 'promising' AS segment),
    STRUCT(42 AS rf, 'potential_loyalists' AS segment),
    STRUCT(43 AS rf, 'potential_loyalists' AS segment),
    STRUCT(44 AS rf, 'loyal_customers' AS segment),
    STRUCT(45 AS rf, 'loyal_customers' AS segment),
    STRUCT(51 AS rf, 'new_customers' AS segment),
    STRUCT(52 AS rf, 'potential_loyalists' AS segment),
    STRUCT(53 AS rf, 'potential_loyalists' AS segment),
    STRUCT(54 AS rf, 'champions' AS segment),
    STRUCT(55 AS rf, 'champions' AS segment)
  ]) AS c
    ON c.rf = 10 * s.r + s.f
)
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
      user_id
    FROM rfm
    WHERE
      segment IN ('at_risk', 'cant_lose_them')
  );
