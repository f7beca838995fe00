SELECT
  u.user_id
FROM users AS u
WHERE
  (
    u.first_seen IS NULL
    OR u.first_seen <= CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
  )
  AND COALESCE(
    NOT (
      u.birth_date IS NULL
    )
    AND DATE_DIFF(
      DAY,
      CAST((
        (
          CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
        ) AT TIME ZONE 'UTC'
      ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE)),
      CASE
        WHEN DATE_FROM_PARTS(
          YEAR(
            CAST((
              (
                CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
              ) AT TIME ZONE 'UTC'
            ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
          ),
          MONTH(u.birth_date),
          CASE
            WHEN MONTH(u.birth_date) = 2
            AND DAY(u.birth_date) = 29
            AND NOT (
              (
                YEAR(
                  CAST((
                    (
                      CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
                    ) AT TIME ZONE 'UTC'
                  ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
                )
              ) % 4 = 0
              AND (
                (
                  YEAR(
                    CAST((
                      (
                        CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
                      ) AT TIME ZONE 'UTC'
                    ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
                  )
                ) % 100 <> 0
                OR (
                  YEAR(
                    CAST((
                      (
                        CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
                      ) AT TIME ZONE 'UTC'
                    ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
                  )
                ) % 400 = 0
              )
            )
            THEN 28
            ELSE DAY(u.birth_date)
          END
        ) >= CAST((
          (
            CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
          ) AT TIME ZONE 'UTC'
        ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
        THEN DATE_FROM_PARTS(
          YEAR(
            CAST((
              (
                CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
              ) AT TIME ZONE 'UTC'
            ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
          ),
          MONTH(u.birth_date),
          CASE
            WHEN MONTH(u.birth_date) = 2
            AND DAY(u.birth_date) = 29
            AND NOT (
              (
                YEAR(
                  CAST((
                    (
                      CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
                    ) AT TIME ZONE 'UTC'
                  ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
                )
              ) % 4 = 0
              AND (
                (
                  YEAR(
                    CAST((
                      (
                        CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
                      ) AT TIME ZONE 'UTC'
                    ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
                  )
                ) % 100 <> 0
                OR (
                  YEAR(
                    CAST((
                      (
                        CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
                      ) AT TIME ZONE 'UTC'
                    ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
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
            CAST((
              (
                CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
              ) AT TIME ZONE 'UTC'
            ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
          ) + 1,
          MONTH(u.birth_date),
          CASE
            WHEN MONTH(u.birth_date) = 2
            AND DAY(u.birth_date) = 29
            AND NOT (
              (
                YEAR(
                  CAST((
                    (
                      CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
                    ) AT TIME ZONE 'UTC'
                  ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
                ) + 1
              ) % 4 = 0
              AND (
                (
                  YEAR(
                    CAST((
                      (
                        CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
                      ) AT TIME ZONE 'UTC'
                    ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
                  ) + 1
                ) % 100 <> 0
                OR (
                  YEAR(
                    CAST((
                      (
                        CAST('2026-11-15 20:00:00.000000' AS Nullable(DateTime))
                      ) AT TIME ZONE 'UTC'
                    ) AT TIME ZONE COALESCE(u.timezone, 'Europe/Prague') AS Nullable(DATE))
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
