-- The HTTP client: http.request{...} suspends the calling task until the response is complete
-- (libcurl on the scheduler's loop; connections are reused across calls). See src/lua/http.c.
return require("moonship.core").http
