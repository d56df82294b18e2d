// A JavaScript flow whose task keeps its cached result for 4 s; the result
// names the flow run that made it.
import { context, flow, task } from 'weft';

const stamp = task('stamp', { cacheKey: (n) => `stamp-${n}`, cacheExpiration: '4s' }, (n) => `${n} from ${context().flowRunId}`);

flow('cached', async () => ({ items: [await stamp(1), await stamp(1)] }));
