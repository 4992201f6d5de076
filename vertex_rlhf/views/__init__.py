"""Views wing: what people look at, rendered from results the other wings produce. Metric
summaries, the run comparison table and charts (PNG, matplotlib without a display). Only
the faces import it; it imports the cloud wing for its data types and nothing imports it
from below."""
