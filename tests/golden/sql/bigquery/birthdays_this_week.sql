SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS DATETIME)
  )
  AND COALESCE(
    NOT u.birth_date IS NULL
    AND DATE_DIFF(
      CASE
        WHEN DATE(
          EXTRACT(YEAR FROM CAST(DATETIME(
            TIMESTAMP((
              CAST('2026-11-15 20:00:00.000000' AS DATETIME)
            ), 'UTC'),
            COALESCE(u.timezone, 'Europe/Prague')
          ) AS DATE)),
          EXTRACT(MONTH FROM u.birth_date),
          CASE
            WHEN EXTRACT(MONTH FROM u.birth_date) = 2
            AND EXTRACT(DAY FROM u.birth_date) = 29
            AND NOT (
              MOD(
                EXTRACT(YEAR FROM CAST(DATETIME(
                  TIMESTAMP((
                    CAST('2026-11-15 20:00:00.000000' AS DATETIME)
                  ), 'UTC'),
                  COALESCE(u.timezone, 'Europe/Prague')
                ) AS DATE)),
                4
              ) = 0
              AND (
                MOD(
                  EXTRACT(YEAR FROM CAST(DATETIME(
                    TIMESTAMP((
                      CAST('2026-11-15 20:00:00.000000' AS DATETIME)
                    ), 'UTC'),
                    COALESCE(u.timezone, 'Europe/Prague')
                  ) AS DATE)),
                  100
                ) <> 0
                OR MOD(
                  EXTRACT(YEAR FROM CAST(DATETIME(
                    TIMESTAMP((
                      CAST('2026-11-15 20:00:00.000000' AS DATETIME)
                    ), 'UTC'),
                    COALESCE(u.timezone, 'Europe/Prague')
                  ) AS DATE)),
                  400
                ) = 0
              )
            )
            THEN 28
            ELSE EXTRACT(DAY FROM u.birth_date)
          END
        ) >= CAST(DATETIME(
          TIMESTAMP((
            CAST('2026-11-15 20:00:00.000000' AS DATETIME)
          ), 'UTC'),
          COALESCE(u.timezone, 'Europe/Prague')
        ) AS DATE)
        THEN DATE(
          EXTRACT(YEAR FROM CAST(DATETIME(
            TIMESTAMP((
              CAST('2026-11-15 20:00:00.000000' AS DATETIME)
            ), 'UTC'),
            COALESCE(u.timezone, 'Europe/Prague')
          ) AS DATE)),
          EXTRACT(MONTH FROM u.birth_date),
          CASE
            WHEN EXTRACT(MONTH FROM u.birth_date) = 2
            AND EXTRACT(DAY FROM u.birth_date) = 29
            AND NOT (
              MOD(
                EXTRACT(YEAR FROM CAST(DATETIME(
                  TIMESTAMP((
                    CAST('2026-11-15 20:00:00.000000' AS DATETIME)
                  ), 'UTC'),
                  COALESCE(u.timezone, 'Europe/Prague')
                ) AS DATE)),
                4
              ) = 0
              AND (
                MOD(
                  EXTRACT(YEAR FROM CAST(DATETIME(
                    TIMESTAMP((
                      CAST('2026-11-15 20:00:00.000000' AS DATETIME)
                    ), 'UTC'),
                    COALESCE(u.timezone, 'Europe/Prague')
                  ) AS DATE)),
                  100
                ) <> 0
                OR MOD(
                  EXTRACT(YEAR FROM CAST(DATETIME(
                    TIMESTAMP((
                      CAST('2026-11-15 20:00:00.000000' AS DATETIME)
                    ), 'UTC'),
                    COALESCE(u.timezone, 'Europe/Prague')
                  ) AS DATE)),
                  400
                ) = 0
              )
            )
            THEN 28
            ELSE EXTRACT(DAY FROM u.birth_date)
          END
        )
        ELSE DATE(
          EXTRACT(YEAR FROM CAST(DATETIME(
            TIMESTAMP((
              CAST('2026-11-15 20:00:00.000000' AS DATETIME)
            ), 'UTC'),
            COALESCE(u.timezone, 'Europe/Prague')
          ) AS DATE)) + 1,
          EXTRACT(MONTH FROM u.birth_date),
          CASE
            WHEN EXTRACT(MONTH FROM u.birth_date) = 2
            AND EXTRACT(DAY FROM u.birth_date) = 29
            AND NOT (
              MOD(
                EXTRACT(YEAR FROM CAST(DATETIME(
                  TIMESTAMP((
                    CAST('2026-11-15 20:00:00.000000' AS DATETIME)
                  ), 'UTC'),
                  COALESCE(u.timezone, 'Europe/Prague')
                ) AS DATE)) + 1,
                4
              ) = 0
              AND (
                MOD(
                  EXTRACT(YEAR FROM CAST(DATETIME(
                    TIMESTAMP((
                      CAST('2026-11-15 20:00:00.000000' AS DATETIME)
                    ), 'UTC'),
                    COALESCE(u.timezone, 'Europe/Prague')
                  ) AS DATE)) + 1,
                  100
                ) <> 0
                OR MOD(
                  EXTRACT(YEAR FROM CAST(DATETIME(
                    TIMESTAMP((
                      CAST('2026-11-15 20:00:00.000000' AS DATETIME)
                    ), 'UTC'),
                    COALESCE(u.timezone, 'Europe/Prague')
                  ) AS DATE)) + 1,
                  400
                ) = 0
              )
            )
            THEN 28
            ELSE EXTRACT(DAY FROM u.birth_date)
          END
        )
      END,
      CAST(DATETIME(
        TIMESTAMP((
          CAST('2026-11-15 20:00:00.000000' AS DATETIME)
        ), 'UTC'),
        COALESCE(u.timezone, 'Europe/Prague')
      ) AS DATE),
      DAY
    ) <= 6,
    FALSE
  );
