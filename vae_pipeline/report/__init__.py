"""Figures and the self-contained HTML report (pure: no Dagster import below this package).

- ``figures``: one Plotly function per figure, taking frames / arrays;
- ``data``: one partition's stored tables, read in one short DuckDB connection;
- ``compute``: the beta sweep, anomaly residual paths and CVAE regime covariances;
- ``build``: tables -> figures, tables and headline numbers; ``html``: the page writer.
"""
