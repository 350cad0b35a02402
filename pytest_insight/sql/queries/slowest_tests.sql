-- Slowest tests: mean seconds per session a test ran in (its results' durations, reruns included, summed
-- per session), as `insight summary` ranks them. Run with: insight sql --file slowest_tests.sql
WITH per_session AS (
    SELECT sut_name, nodeid, session_id, sum(duration) AS seconds
    FROM results
    GROUP BY sut_name, nodeid, session_id
)
SELECT
    sut_name,
    nodeid,
    count(*) AS runs,
    avg(seconds) AS mean_duration,
    max(seconds) AS max_duration
FROM per_session
GROUP BY sut_name, nodeid
ORDER BY mean_duration DESC, nodeid
LIMIT 20
