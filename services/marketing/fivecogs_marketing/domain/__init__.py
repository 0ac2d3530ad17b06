"""Marketing: what may be sold where (`listing`), the stock it is sold from (`stock`), and the orders,
cancellations and payments that move it (`orders`). Pure rules and state transitions; no I/O."""
