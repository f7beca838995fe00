SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
  )
  AND COALESCE(
    NOT u.birth_date IS NULL
    AND DATEDIFF(
      DAY,
      CAST(CONVERT_TIMEZONE(
        'UTC',
        COALESCE(u.timezone, 'Europe/Prague'),
        (
          CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
        )
      ) AS DATE),
      CASE
        WHEN DATE_FROM_PARTS(
          YEAR(
            CAST(CONVERT_TIMEZONE(
              'UTC',
              COALESCE(u.timezone, 'Europe/Prague'),
              (
                CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
              )
            ) AS DATE)
          ),
          MONTH(u.birth_date),
          CASE
            WHEN MONTH(u.birth_date) = 2
            AND DAY(u.birth_date) = 29
            AND NOT (
              (
                YEAR(
                  CAST(CONVERT_TIMEZONE(
                    'UTC',
                    COALESCE(u.timezone, 'Europe/Prague'),
                    (
                      CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
                    )
                  ) AS DATE)
                )
              ) % 4 = 0
              AND (
                (
                  YEAR(
                    CAST(CONVERT_TIMEZONE(
                      'UTC',
                      COALESCE(u.timezone, 'Europe/Prague'),
                      (
                        CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
                      )
                    ) AS DATE)
                  )
                ) % 100 <> 0
                OR (
                  YEAR(
                    CAST(CONVERT_TIMEZONE(
                      'UTC',
                      COALESCE(u.timezone, 'Europe/Prague'),
                      (
                        CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
                      )
                    ) AS DATE)
                  )
                ) % 400 = 0
              )
            )
            THEN 28
            ELSE DAY(u.birth_date)
          END
        ) >= CAST(CONVERT_TIMEZONE(
          'UTC',
          COALESCE(u.timezone, 'Europe/Prague'),
          (
            CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
          )
        ) AS DATE)
        THEN DATE_FROM_PARTS(
          YEAR(
            CAST(CONVERT_TIMEZONE(
              'UTC',
              COALESCE(u.timezone, 'Europe/Prague'),
              (
                CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
              )
            ) AS DATE)
          ),
          MONTH(u.birth_date),
          CASE
            WHEN MONTH(u.birth_date) = 2
            AND DAY(u.birth_date) = 29
            AND NOT (
              (
                YEAR(
                  CAST(CONVERT_TIMEZONE(
                    'UTC',
                    COALESCE(u.timezone, 'Europe/Prague'),
                    (
                      CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
                    )
                  ) AS DATE)
                )
              ) % 4 = 0
              AND (
                (
                  YEAR(
                    CAST(CONVERT_TIMEZONE(
                      'UTC',
                      COALESCE(u.timezone, 'Europe/Prague'),
                      (
                        CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
                      )
                    ) AS DATE)
                  )
                ) % 100 <> 0
                OR (
                  YEAR(
                    CAST(CONVERT_TIMEZONE(
                      'UTC',
                      COALESCE(u.timezone, 'Europe/Prague'),
                      (
                        CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
                      )
                    ) AS DATE)
                  )
                ) % 400 = 0
              )
            )
            THEN 28
            ELSE DAY(u.birth_date)
          END
        )
        ELSE DATE_FROM_PARTS(
          YEAR(
            CAST(CONVERT_TIMEZONE(
              'UTC',
              COALESCE(u.timezone, 'Europe/Prague'),
              (
                CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
              )
            ) AS DATE)
          ) + 1,
          MONTH(u.birth_date),
          CASE
            WHEN MONTH(u.birth_date) = 2
            AND DAY(u.birth_date) = 29
            AND NOT (
              (
                YEAR(
                  CAST(CONVERT_TIMEZONE(
                    'UTC',
                    COALESCE(u.timezone, 'Europe/Prague'),
                    (
                      CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
                    )
                  ) AS DATE)
                ) + 1
              ) % 4 = 0
              AND (
                (
                  YEAR(
                    CAST(CONVERT_TIMEZONE(
                      'UTC',
                      COALESCE(u.timezone, 'Europe/Prague'),
                      (
                        CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
                      )
                    ) AS DATE)
                  ) + 1
                ) % 100 <> 0
                OR (
                  YEAR(
                    CAST(CONVERT_TIMEZONE(
                      'UTC',
                      COALESCE(u.timezone, 'Europe/Prague'),
                      (
                        CAST('2026-11-15 20:00:00.000000' AS TIMESTAMPNTZ)
                      )
                    ) AS DATE)
                  ) + 1
                ) % 400 = 0
              )
            )
            THEN 28
            ELSE DAY(u.birth_date)
          END
        )
      END
    ) <= 6,
    FALSE
  );
