"""Study designs: randomisation (:mod:`.randomisation`), matched controls (:mod:`.matching`), dose finding
(:mod:`.dose_finding`) and sample size and power (:mod:`.power`)."""
