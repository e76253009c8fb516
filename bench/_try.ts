import { runIdle } from './idle.bench';
console.log(JSON.stringify(await runIdle(true, console.log), null, 1));
