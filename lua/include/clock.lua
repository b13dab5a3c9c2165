--[[
  Function to read the server clock in milliseconds. Time always comes from Redis, never from a
  client, so every process and every script sees one clock.
]]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
