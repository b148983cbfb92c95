"""The paper-agnostic reproduction kit: configuration, data, training, tracking, reporting,
benchmarking and budget machinery. It never imports a paper package; a paper plugs in through
:mod:`repro.paper`."""
