"""privet.basemodels: the registry of base models that may be fine-tuned (issue 21).

- `inspect`: a local Hugging Face folder read as hostile input (roots, links, sizes,
  required files, family), its digests and public facts (architecture, vocabulary
  scripts, positions, pooling, licence);
- `licences`: an SPDX id or expression checked against the SPDX License List, or a
  licence's own words marked as free text;
- `service`: register, list (keyset pages by name), show, retire (each change one ledger
  event), the admission check and the catalog resolver.
"""
