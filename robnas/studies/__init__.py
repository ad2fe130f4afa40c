"""Studies that train and attack whole sets of named networks (above training and evaluation).

modifications.py  the architectural-modification study: BN, residual, SE
plot.py           its matplotlib figure
"""
