"""The evaluation stack on top of the hardware (``hw``), its golden model (``golden``) and
synthesis (``synth``): the RTL runners (``realm.rtl``), the W8A8 LLM harness (``realm.llm``),
statistical ABFT in the loop (``realm.abft``), campaigns (``realm.campaign``), the cross-layer
check (``realm.crosslayer``), voltage underscaling (``realm.energy``) and the one command line
(``realm.cli``). None of the lower packages imports it."""
