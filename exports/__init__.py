"""What leaves the ledger: Factur-X documents and the journal, PES V2 files for Hélios, explanations (bases de la liquidation) and dossiers."""
