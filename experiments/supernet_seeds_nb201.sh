#!/bin/sh
# The supernet seed study: the 32-epoch clean NB201 recipe of oneshot_rank_nb201_long
# trained again with seeds 1-3 (experiments/oneshot_rank_nb201.py) and seed 1 (`robnas supernet
# train`, then `robnas rank --score params+supernet --fgsm-eps 0`: naswot is the same for every
# supernet and comes from the committed table), each scored on the first draw's 500 cells; then
# experiments/supernet_seeds_nb201.py over these and the two seed-0 supernets already committed
# (oneshot_rank_nb201_long, rank_cli_nb201). Two lanes run side by side, one thread each: about
# 2 h on 2 cores. Resumable: rerun it (every command resumes).
#     sh experiments/supernet_seeds_nb201.sh          (from the repository root)
set -e
: "${ROBNAS_DATA:?set ROBNAS_DATA to the data folder (CIFAR-10 and nb201-robustness)}"
export ROBNAS_DATA OMP_NUM_THREADS=1
W=${W:-experiments/runs/supernet_seeds}
R=experiments/results
ONESHOT=$R/oneshot_rank_nb201 CLI=$R/rank_cli_nb201
CELLS=$ONESHOT/oneshot_rank_nb201_long.csv
mkdir -p "$W"

experiment() {  # one supernet of the experiment's recipe, training seed $1
    python experiments/oneshot_rank_nb201.py --epochs 32 --archs 500 --held 6000 --images 5000 \
        --no-fgsm --levers base --seed "$1" --cells $CELLS --work "$W/exp$1" \
        --out $ONESHOT/oneshot_rank_nb201_seed"$1" > "$W/exp$1.log" 2>&1
}

cli() {  # the same recipe through the user's commands, training seed $1
    if [ -f "$W/cli$1/sn/last.pt" ]; then resume=--resume; else resume=; fi
    # batch, augmentation and sampler pinned to the tiny preset the committed runs used
    robnas supernet train --space nb201 --C 8 --N 1 --preset tiny --method clean --epochs 32 \
        --batch-size 128 --augment --sampler uniform_op \
        --warmup-epochs 3.2 --lr 0.05 --weight-decay 5e-4 --train-size 44000 --val-size 6000 \
        --seed "$1" --no-progress --out "$W/cli$1/sn" $resume > "$W/cli$1.log" 2>&1
    robnas rank "$W/cli$1/sn/last.pt" --benchmark "$ROBNAS_DATA/nb201-robustness" --archs 500 \
        --images 5000 --score params+supernet --fgsm-eps 0 --no-progress \
        --out "$W/cli$1/rank" >> "$W/cli$1.log" 2>&1
    cp "$W/cli$1/rank/cells.csv" $CLI/rank_cli_nb201_seed"$1".csv
}

(experiment 1 && experiment 3) &
(experiment 2 && cli 1) &
wait
python experiments/supernet_seeds_nb201.py \
    --supernet seed0=$ONESHOT/oneshot_rank_nb201_long.csv \
    --supernet seed1=$ONESHOT/oneshot_rank_nb201_seed1.csv \
    --supernet seed2=$ONESHOT/oneshot_rank_nb201_seed2.csv \
    --supernet seed3=$ONESHOT/oneshot_rank_nb201_seed3.csv \
    --supernet cli0=$CLI/rank_cli_nb201.csv --supernet cli1=$CLI/rank_cli_nb201_seed1.csv \
    --naswot $R/indicators_nb201/indicators_nb201_oneshot500_naswot_n5.csv \
    --out $R/supernet_seeds_nb201/supernet_seeds_nb201
