# gnuplot script for bench/soak.sh: RSS of each daemon and Redis used_memory
# (top), open descriptors (bottom), over the run; faults as dashed lines.
# Variables: samples, faults (CSV files), output (PNG), arrows (commands).
set datafile separator ','
set terminal pngcairo size 1200,800 font ',10' noenhanced
set output output
set multiplot layout 2,1 title 'bench/soak.sh: the stack under traffic and faults'
set key outside right top
set grid
set xlabel 'seconds'

# one dashed line per fault (the variable arrows: "set arrow ...;" lines made
# by bench/soak.sh from faults.csv)
eval arrows

set ylabel 'MB'
plot samples using 1:($2/1024) skip 1 with linespoints title 'books RSS', \
     samples using 1:($4/1024) skip 1 with linespoints title 'orders RSS', \
     samples using 1:($6/1024) skip 1 with linespoints title 'worker RSS', \
     samples using 1:($8/1024) skip 1 with linespoints title 'redis used_memory', \
     faults using 1:(0):3 skip 1 with labels rotate by 90 left offset 0.5,0.5 notitle

set ylabel 'open descriptors'
plot samples using 1:3 skip 1 with linespoints title 'books', \
     samples using 1:5 skip 1 with linespoints title 'orders', \
     samples using 1:7 skip 1 with linespoints title 'worker'
unset multiplot
