"""Airflow API-server plugins (thin adapters over the Airflow-free cores), loaded through the
``airflow.plugins`` entry point."""
