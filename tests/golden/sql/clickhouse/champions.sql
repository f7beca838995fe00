WITH rfm AS (
  SELECT
    user_id,
    recency_days,
    frequency,
    monetary,
    r,
    f,
    m,
    CAST(100 * r + 10 * f + m AS Nullable(String)) AS cell,
    CASE 10 * r + f
      WHEN 11
      THEN 'hibernating'
      WHEN 12
      THEN 'hibernating'
      WHEN 13
      THEN 'at_risk'
      WHEN 14
      THEN 'at_risk'
      WHEN 15
      THEN 'cant_lose_them'
      WHEN 21
      THEN 'hibernating'
      WHEN 22
      THEN 'hibernating'
      WHEN 23
      THEN 'at_risk'
      WHEN 24
      THEN 'at_risk'
      WHEN 25
      THEN 'cant_lose_them'
      WHEN 31
      THEN 'about_to_sleep'
      WHEN 32
      THEN 'about_to_sleep'
      WHEN 33
      THEN 'need_attention'
      WHEN 34
      THEN 'loyal_customers'
      WHEN 35
      THEN 'loyal_customers'
      WHEN 41
      THEN 'promising'
      WHEN 42
      THEN 'potential_loyalists'
      WHEN 43
      THEN 'potential_loyalists'
      WHEN 44
      THEN 'loyal_customers'
      WHEN 45
      THEN 'loyal_customers'
      WHEN 51
      THEN 'new_customers'
      WHEN 52
      THEN 'potential_loyalists'
      WHEN 53
      THEN 'potential_loyalists'
      WHEN 54
      THEN 'champions'
      WHEN 55
      THEN 'champions'
    END AS segment
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
          o.user_id,
          LOWER(HEX(MD5(o.user_id))) AS h,
          DATE_DIFF(DAY, MAX(o.day), CAST('2026-11-15' AS Nullable(DATE))) AS recency_days,
          COUNT(DISTINCT o.day) AS frequency,
          CAST(SUM(o.amount_base) AS Nullable(Decimal(18, 3))) AS monetary
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
          o.user_id
      ) AS b0
    ) AS b
  ) AS s
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
      segment IN ('champions')
  );
