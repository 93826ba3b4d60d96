"""Target-independent analyses of a program, shared by the Sephirot passes and the GFT
planner: the IR (``ir``), the CFG with dominance (``cfg``), abstract values and liveness
(``absval``), and the data-dependence graph of a block (``ddg``)."""
