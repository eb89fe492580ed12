-- replay.lua -- wrk script: replays prepared POST requests from a file (one a line:
-- path TAB "Header: value" TAB content-type TAB body), each once in order, then from the start.
-- Used by bench_msg.py, which computes signatures beforehand (the load generator stays cheap).
local reqs = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local path, hdr, ctype, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local hn, hv = hdr:match("^([^:]+):%s*(.*)$")
    local h = {["Content-Type"] = ctype}
    h[hn] = hv
    reqs[#reqs + 1] = wrk.format("POST", path, h, body)
  end
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
