-- wrk script: each connection sends `depth` GET /plaintext requests back to back (HTTP/1.1
-- pipelining) and wrk counts every response. Usage: wrk ... -s pipeline.lua URL -- 16
local depth = 16
init = function(args)
  depth = tonumber(args[1]) or depth
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil)
  end
  req = table.concat(r)
end
request = function()
  return req
end
