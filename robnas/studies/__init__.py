"""Studies that train and attack whole sets of named networks (above training and evaluation).

modifications.py  the architectural-modification study (issue 11 section 2): BN, residual, SE
plot.py           its matplotlib figure
"""
