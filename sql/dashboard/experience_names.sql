-- The experience filter's choices: every named experience.
SELECT DISTINCT name FROM experiences WHERE name IS NOT NULL ORDER BY name
