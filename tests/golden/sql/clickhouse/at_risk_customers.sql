WITH rfm AS (
  SELECT
    s.user_id,
    s.recency_days,
    s.frequency,
    s.monetary,
    s.r,
    s.f,
    s.m,
    CAST(100 * s.r + 10 * s.f + s.m AS Nullable(String)) AS cell,
    c.segment
  FROM (
    SELECT
      user_id,
      recency_days,
      frequency,
      monetary,
      NTILE(5) OVER (ORDER BY recency_days DESC, hr) AS r,
      NTILE(5) OVER (ORDER BY frequency ASC, hr) AS f,
      NTILE(5) OVER (ORDER BY monetary ASC, hr) AS m
    FROM (
      SELECT
        b0.*,
        ROW_NUMBER() OVER (ORDER BY h, user_id) AS hr
      FROM (
        SELECT
          d.user_id,
          LOWER(HEX(MD5(d.user_id))) AS h,
          DATE_DIFF(DAY, MAX(d.day), CAST('2026-11-15' AS Nullable(DATE))) AS recency_days,
          COUNT(*) AS frequency,
          CAST(SUM(d.amount) AS Nullable(Decimal(18, 3))) AS monetary
        FROM (
          SELECT
            o.user_id,
            o.day,
            SUM(o.amount_base) AS amount
          FROM (
            SELECT
              p.user_id,
              CASE
                WHEN p.ts >= CAST('2026-10-25 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2026-03-29 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2025-10-26 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2025-03-30 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2024-10-27 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2024-03-31 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2023-10-29 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2023-03-26 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2022-10-30 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2022-03-27 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2021-10-31 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2021-03-28 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2020-10-25 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2020-03-29 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2019-10-27 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2019-03-31 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2018-10-28 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2018-03-25 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2017-10-29 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2017-03-26 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2016-10-30 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2016-03-27 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2015-10-25 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2015-03-29 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2014-10-26 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2014-03-30 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2013-10-27 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2013-03-31 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2012-10-28 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2012-03-25 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2011-10-30 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2011-03-27 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2010-10-31 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2010-03-28 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2009-10-25 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2009-03-29 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2008-10-26 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2008-03-30 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2007-10-28 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2007-03-25 01:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '7200' SECOND AS Nullable(DATE))
                WHEN p.ts >= CAST('2006-10-31 20:00:00.000000' AS Nullable(DateTime))
                THEN CAST(p.ts + INTERVAL '3600' SECOND AS Nullable(DATE))
                ELSE CAST((
                  (
                    p.ts
                  ) AT TIME ZONE 'UTC'
                ) AT TIME ZONE 'Europe/Prague' AS Nullable(DATE))
              END AS day,
              p.amount_base
            FROM purchases AS p
            WHERE
              p.status = 'paid'
              AND NOT (
                p.user_id IS NULL
              )
              AND p.ts <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
              AND p.ts >= CAST('2025-11-15 20:00:00.000000' AS Nullable(DateTime))
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
  JOIN (
    SELECT
      11 AS rf,
      'hibernating' AS segment
    UNION ALL
    SELECT
      12,
      'hibernating'
    UNION ALL
    SELECT
      13,
      'at_risk'
    UNION ALL
    SELECT
      14,
      'at_risk'
    UNION ALL
    SELECT
      15,
      'cant_lose_them'
    UNION ALL
    SELECT
      21,
      'hibernating'
    UNION ALL
    SELECT
      22,
      'hibernating'
    UNION ALL
    SELECT
      23,
      'at_risk'
    UNION ALL
    SELECT
      24,
      'at_risk'
    UNION ALL
    SELECT
      25,
      'cant_lose_them'
    UNION ALL
    SELECT
      31,
      'about_to_sleep'
    UNION ALL
    SELECT
      32,
      'about_to_sleep'
    UNION ALL
    SELECT
      33,
      'need_attention'
    UNION ALL
    SELECT
      34,
      'loyal_customers'
    UNION ALL
    SELECT
      35,
      'loyal_customers'
    UNION ALL
    SELECT
      41,
      'promising'
    UNION ALL
    SELECT
      42,
      'potential_loyalists'
    UNION ALL
    SELECT
      43,
      'potential_loyalists'
    UNION ALL
    SELECT
      44,
      'loyal_customers'
    UNION ALL
    SELECT
      45,
      'loyal_customers'
    UNION ALL
    SELECT
      51,
      'new_customers'
    UNION ALL
    SELECT
      52,
      'potential_loyalists'
    UNION ALL
    SELECT
      53,
      'potential_loyalists'
    UNION ALL
    SELECT
      54,
      'champions'
    UNION ALL
    SELECT
      55,
      'champions'
  ) AS c
    ON c.rf = 10 * s.r + s.f
)
SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
  )
  AND u.user_id IN (
    SELECT
      user_id
    FROM rfm
    WHERE
      segment IN ('at_risk', 'cant_lose_them')
  );
