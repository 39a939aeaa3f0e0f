-- kong.timer (lua-resty-timer-ng, created by kong/global.lua): the subset plugins use, over
-- ngx.timer; a cancelled named timer skips its pending runs.
-- luacheck: ignore 212/self (the methods keep timer-ng's `:` signatures)
local _M = {}

function _M.new()
  local timer = {}
  local named = {}
  local function wrap(cb)
    return function(premature, ...)
      return cb(premature, ...)
    end
  end
  local function while_named(name, cb)
    return function(premature, ...)
      if named[name] then return cb(premature, ...) end
    end
  end
  function timer:at(delay, cb, ...)
    return ngx.timer.at(delay, wrap(cb), ...)
  end
  function timer:every(interval, cb, ...)
    return ngx.timer.every(interval, wrap(cb), ...)
  end
  function timer:named_at(name, delay, cb, ...)
    named[name] = true
    return ngx.timer.at(delay, while_named(name, cb), ...)
  end
  function timer:named_every(name, interval, cb, ...)
    named[name] = true
    return ngx.timer.every(interval, while_named(name, cb), ...)
  end
  function timer:cancel(name)
    named[name] = nil
    return true
  end
  function timer:is_managed() return true end
  return timer
end

return _M
