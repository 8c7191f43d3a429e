"""The portal's subscriptions pages: list, change plan, cancel (with a retention offer), renew,
pause and resume. ``service`` holds the rules, ``forms`` the input, ``controller`` the routes."""
