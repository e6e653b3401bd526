"""What every bed shares: processes that clean up after a killed run
(``processes``), and our controller run as its own process (``controller``)."""
